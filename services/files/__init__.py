"""FileService: presigned multipart uploads to S3, processing (content type, malware scan,
thumbnails), download URLs."""
