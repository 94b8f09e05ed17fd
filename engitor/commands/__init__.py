"""CLI verbs, one module each; see engitor.cli."""
