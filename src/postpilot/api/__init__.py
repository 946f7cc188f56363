"""HTTP API: parse, authorize, call the layers, render. No scheduling logic lives here."""
