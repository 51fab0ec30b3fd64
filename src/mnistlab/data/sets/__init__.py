"""One file per dataset; each registers a loader in `mnistlab.data.DATASETS`."""
