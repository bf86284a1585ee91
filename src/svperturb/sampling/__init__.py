"""Random weights and activation patterns with paired, split-independent seeding; draws made on the GPU."""
