"""scribbleseg.data"""
