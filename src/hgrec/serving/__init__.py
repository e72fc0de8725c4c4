"""Serving (P1 section 4.3): per-type nearest-neighbour indexes, the HTTP service, the page.

* :mod:`~hgrec.serving.index`: exact / voyager indexes, recall measured at build time;
* :mod:`~hgrec.serving.state`: a run directory loaded for serving;
* :mod:`~hgrec.serving.app`: the FastAPI app (``create_app``) and atomic reloads;
* :mod:`~hgrec.serving.cli`: ``hgrec serve``.
"""
