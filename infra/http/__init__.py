"""HTTP plumbing shared by the apps' APIs: throttles, breakers, parsers, renderers, health."""
