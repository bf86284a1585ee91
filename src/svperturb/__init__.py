"""svperturb: the random-matrix statistics of Riedi, Balestriero & Baraniuk,
"Singular Value Perturbation and Deep Network Optimization" (arXiv 2203.03099 v4), at scale."""

__version__ = "0.1.0"
