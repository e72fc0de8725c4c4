"""Serving (P1 section 4.3): per-type nearest-neighbour indexes, the HTTP service, the page.

* :mod:`~hgrec.serving.index`: exact / voyager indexes, recall measured at build time;
* :mod:`~hgrec.serving.load`: a finished run directory loaded for serving;
* :mod:`~hgrec.serving.state`: the loaded state and how it answers (recommend, similar, because);
* :mod:`~hgrec.serving.limits`: every request size limit, in one place;
* :mod:`~hgrec.serving.schemas`: request and response bodies (the OpenAPI schema);
* :mod:`~hgrec.serving.security`: admin token, runs root, allowed hosts, body size;
* :mod:`~hgrec.serving.errors`: error answers that always encode, in the documented shapes;
* :mod:`~hgrec.serving.metrics`: Prometheus text metrics;
* :mod:`~hgrec.serving.app`: the FastAPI app (``create_app``) and atomic reloads;
* :mod:`~hgrec.serving.cli`: ``hgrec serve``.
"""
