"""The handlers of AMI events (queue events into call records, screen-pops); the AMI client is `ami_handlers.client`."""
