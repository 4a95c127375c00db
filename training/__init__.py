"""Training qabot's own models: the extractive reader shipped in models/qabot-reader."""
