"""From a farm's raw export to validated, split model inputs."""
