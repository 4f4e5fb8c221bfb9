"""FileService: presigned multipart uploads to S3, processing state, download URLs."""
