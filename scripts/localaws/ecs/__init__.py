"""ECS: the API fixes moto needs to store what was registered (`api`), the scheduler that places tasks and rolls deployments on a clock (`scheduler`), and tasks as real containers (`tasks`)."""
