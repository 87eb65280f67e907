"""The HTTP surface of the facade: dependencies and one router module per resource."""
