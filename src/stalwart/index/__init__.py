"""Reading package indexes: project pages and the choice of files on them. Pure (no network)."""
