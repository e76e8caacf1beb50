"""The AWS backend: S3, SQS, DynamoDB, SSM Parameter Store and SNS behind the ports.

Every adapter takes an injected boto3 client (see :func:`lakeline.adapters.aws.session.clients`)
and never creates cloud resources: buckets, queues, the table and the topic come from the deploy
step. Values always travel as API parameters, never spliced into expressions.

::

    port            adapter              service
    ──────────────  ───────────────────  ─────────────────────────────────────────────
    ObjectStore     S3ObjectStore        S3 (zone → bucket + key prefix)
    Queue           SqsQueue             SQS standard queue; the DLQ via RedrivePolicy
    StateStore      DynamoStateStore     one DynamoDB table (pk = table, sk = key, TTL)
    ParameterStore  SsmParameterStore    SSM Parameter Store (String parameters)
    Notifier        SnsNotifier          SNS topic
"""
