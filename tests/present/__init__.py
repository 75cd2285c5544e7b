"""Tests of sweep.present: figures, the study report and the dashboard."""
