"""The platform's admin API: projects, project API keys, usage and costs (``/v1/organization``)."""
