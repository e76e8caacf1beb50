"""Running lakeline on AWS Lambda: the handlers live in :mod:`lakeline.aws.handlers`."""
