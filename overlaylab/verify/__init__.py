"""`invoke verify`: the machinery (run, context, check, batch, probes, result,
diagnosis); the checks themselves, one module per group, are in checks/."""
