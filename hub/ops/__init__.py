"""Running the hub process: Prometheus metrics, leadership across replicas (`leader`) and the cycle
collector's policy for processes holding thousands of streams (`gcpolicy`)."""
