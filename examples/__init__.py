"""Examples of pointing the harness at kernels of your own (see README.md, "Test your own kernel")."""
