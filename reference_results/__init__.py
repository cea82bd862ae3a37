"""The published values the report and the benchmark suite compare with (``published.json``),
shipped with the package as ``subnetbench.reference_results``; see README.md here."""
from pathlib import Path

PUBLISHED = Path(__file__).resolve().with_name("published.json")
