"""Posts (沉淀): articles by owner/admin/guests, member questions and answers, comments, 精华."""
