"""What a deploy does before new code runs: the CloudFormation custom resource behind
``Setup`` in template.yaml (the topic, the bootstrap brokers, the schema migrations); and
after: ``smoke``, one scheduler tick on the deployed stack."""
