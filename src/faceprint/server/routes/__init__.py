"""The service's routes: ``health`` (``/health``, ``/ready``) and ``compreface`` (``/api/v1/...``)."""
