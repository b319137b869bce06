"""IVR: menu data and transitions, prompt catalogue and builder, spoken dates and numbers."""
