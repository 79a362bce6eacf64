"""One module per provider; each defines `Backend`, the class the registry creates."""
