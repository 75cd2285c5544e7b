"""What people read: tables, JSON and CSV of trials and studies. Never imports TensorFlow."""
