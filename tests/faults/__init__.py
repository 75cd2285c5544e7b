"""The fault suite: real workers killed, interrupted, starved and restarted (``-m faults``)."""
