"""Storage ports and their implementations: the journal, read queries, Redis."""
