"""One module per command group; ``imagebak.cli`` assembles them."""
