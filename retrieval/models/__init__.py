"""The models: a hub id or folder resolved on this disk, ONNX export and sessions, the embedders.
May import only the foundation modules (`errors`, `files`, `settings`, `secrets`)."""
