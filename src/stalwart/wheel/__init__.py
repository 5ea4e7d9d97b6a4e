"""Reading and validating wheels; everything here is pure (it never writes to disk)."""
