"""How a running server is watched: Prometheus metrics (``metrics``), the request a piece of
work belongs to (``requests``), and the metering seam that counts tokens and refusals."""
