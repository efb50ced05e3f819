"""The demo county: a synthetic Jiangsu county (睢宁县's real townships and villages, invented
people) with ground truth, so that every later stage is built and tested on realistic data.

`generate.generate()` builds it, `truth.write_truth()` writes the truth files, and
`truth.load_truth()` / `truth.residents_on()` read them back; see docs/demo.md.
"""

from datetime import date

DEFAULT_START = date(2026, 1, 1)  # first day of the simulated period unless --start says otherwise
