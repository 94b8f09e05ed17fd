"""Reading the store as a user does: what an image holds (index), how two differ (diff), a
name's builds (history), what can go (prune), what it is made of (sbom), who vouches (sign)."""
