"""ELB: listeners as a real HAProxy (`load_balancer`), target registration and health from real checks (`targets`), and the ALB metrics CloudWatch gets from real traffic (`metrics`)."""
