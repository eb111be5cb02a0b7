"""Event models, topic names and codecs shared by every NN Tracker component (pure: imports nothing of ours)."""
