"""What the user asks for: command-line specs, requirements files and ``pylock.toml``. Pure."""
