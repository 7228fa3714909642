"""Presigned uploads straight to the bucket, and the inline imports that go through the same
importer. Only boto3 here (the API functions stay small); the heavy import core is in
`stage1.imports`, run by the importer function."""
