"""Plugin records, their parameter definitions, and the stock plugins seeded on first start."""
