"""subnetbench's benchmark engine: networks, protocols, data, training, results and the CLI."""
