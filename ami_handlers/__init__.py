"""AMI connection (panoramisk, wrapped) and the handlers of queue and agent events."""
