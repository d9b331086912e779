"""IAM: the resources AWS authorizes each call against, so enforced policies are judged as AWS would judge them (`resources`)."""
