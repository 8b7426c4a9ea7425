"""The skin-condition detector: synthetic images, YOLO dataset checks, Ultralytics."""
