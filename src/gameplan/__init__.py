"""Trading gameplan: schema, loader (fail closed) and the Strategy C emergency plan."""
