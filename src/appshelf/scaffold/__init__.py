"""Files `appshelf init` copies into a new registry repository (shipped as package data)."""
