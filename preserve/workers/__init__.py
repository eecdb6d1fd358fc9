"""Who runs jobs: threads of this process (local), or distributed workers."""
