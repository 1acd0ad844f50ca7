"""Machine configurations, the named row blocks of the residual stream, and punch cards."""
