"""hgrec: 2T-HGNN recommendations for a new, sparse content type (De Nadai et al. 2024)."""

__version__ = "0.1.0"
