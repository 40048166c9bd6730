"""Local fakes of services outside the product (Hugging Face)."""
