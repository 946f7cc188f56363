"""One small module per platform behind one protocol. Publishers translate a platform's contract
into classified outcomes; they never touch the database."""
