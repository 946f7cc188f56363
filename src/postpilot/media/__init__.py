"""The media library: uploaded images checked against the platforms they go to, normalised,
thumbnailed and kept in a storage behind a small interface (local files by default)."""
